# Job backends of the recipe (sourced by merit.sh after path.sh).
#   local: jobs run on this machine (default)
#   slurm: each job is an `sbatch --wait` (a job array for parallel jobs); edit the
#          partitions and resources below (or set MERIT_CMD_BACKEND=slurm)
# train_cmd: data preparation (stages 1-5), statistics, scoring (stage 10);
# cuda_cmd: training (merit.sh adds --gpu N --num_nodes N); decode_cmd: inference
# (merit.sh adds --gpu 0, or 1 with --gpu_inference true).
#
# Options of the runner (python -m espnet2_merit.bin.merit_launch --help):
#   --num_threads N     CPUs of each job (Slurm: --cpus-per-task; its OpenMP/MKL
#                       threads follow them, shared by its processes, one per GPU).
#                       merit.sh gives the single-job stages that parallelise
#                       themselves (stages 1-5, 10) --num_threads ${nj}.
#   --slurm_opt=O       an sbatch option of every job (memory, time, account)
#   --slurm_gpu_opt=O   an sbatch option of a job with GPUs, --slurm_cpu_opt=O one of
#                       a job without: the partition follows what a job needs, not
#                       the command, so statistics (--gpu 0) and CPU decoding go to
#                       the CPU partition even through cuda_cmd / decode_cmd (the
#                       rule of ESPnet's conf/slurm.conf: "option gpu=0 -p cpu").
# GPUs are per node (--gres=gpu:N); --num_nodes N asks for N nodes with one task
# each, and merit.sh starts training there with srun (ESPnet's multi-node launch).
cmd_backend=${MERIT_CMD_BACKEND:-local}

_launch="${python} -m espnet2_merit.bin.merit_launch"
case "${cmd_backend}" in
    local)
        train_cmd="${_launch} --backend local"
        cuda_cmd="${_launch} --backend local"
        decode_cmd="${_launch} --backend local"
        ;;
    slurm)
        _slurm="${_launch} --backend slurm --slurm_cpu_opt=--partition=cpu --slurm_gpu_opt=--partition=gpu"
        train_cmd="${_slurm} --num_threads 1 --slurm_opt=--mem=8G"
        cuda_cmd="${_slurm} --num_threads 8 --slurm_opt=--mem=64G"
        decode_cmd="${_slurm} --num_threads 2 --slurm_opt=--mem=16G"
        unset _slurm
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        exit 1
        ;;
esac
unset _launch
