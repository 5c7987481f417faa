"""espnet2_merit: noise-robust speech emotion recognition jointly trained with speech
enhancement (Sparse MERIT and its baselines) as an ESPnet2 plugin."""

from setuptools import find_packages, setup

setup(
    name="espnet2_merit",
    version="0.1.0",
    description="Sparse MERIT: joint speech enhancement and emotion recognition "
    "with mixture-of-experts SSL fusion, as an ESPnet2 task",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["espnet2_merit", "espnet2_merit.*"]),
    # The configs ship with the package (merit_demo and users of a wheel need them;
    # the repository's top-level conf/ is a link to them).
    package_data={"espnet2_merit": ["conf/*.yaml", "conf/tuning/*.yaml"]},
    install_requires=[
        "espnet==202511",
        "espnet-s3prl>=2026.5.14",
        "espnet_model_zoo",
        "torch>=2.6",
        "torchaudio>=2.6",
        "humanfriendly",
        "pyyaml",
        "soundfile",
        "pesq",
        "pystoi",
        "scikit-learn",
        "typeguard",
        "tensorboard",
        "matplotlib",
        "pyroomacoustics",  # the mini recipe's RIRs (local/make_mini_rir.py)
        "librosa",  # --augmentation's pitch shift
        "scipy",
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-timeout",
            "black",
            "isort",
            "onnx",
            "onnxruntime",
        ],
    },
    entry_points={"console_scripts": ["merit=espnet2_merit.bin.merit_cli:main"]},
    license="Apache-2.0",
)
