# Job backends of the recipe (sourced by merit.sh after path.sh).
#   local: jobs run on this machine (default)
#   slurm: each stage's jobs are one `sbatch --array`; edit the partitions below
# train_cmd: data preparation, statistics, scoring; cuda_cmd: training (merit.sh adds
# --gpu N); decode_cmd: inference.
cmd_backend=${MERIT_CMD_BACKEND:-local}

_launch="${python} -m espnet2_merit.bin.merit_launch"
case "${cmd_backend}" in
    local)
        train_cmd="${_launch} --backend local"
        cuda_cmd="${_launch} --backend local"
        decode_cmd="${_launch} --backend local"
        ;;
    slurm)
        train_cmd="${_launch} --backend slurm --slurm_opt=--partition=cpu --slurm_opt=--mem=8G"
        cuda_cmd="${_launch} --backend slurm --slurm_opt=--partition=gpu --slurm_opt=--mem=64G"
        decode_cmd="${_launch} --backend slurm --slurm_opt=--partition=gpu --slurm_opt=--mem=16G"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        exit 1
        ;;
esac
unset _launch
