"""Packaging for mater-tf (console script `mater-tf`).

The pins are the set tested together in ../shared/STACK.md: TensorFlow 2.17 is
the newest that tensorflow-io's ops load with, and it needs numpy < 2.
"""

from setuptools import find_packages, setup

CORE = [
    "tensorflow==2.17.1",
    "keras==3.15.1",
    "tensorboard==2.17.1",
    "numpy==1.26.4",
    "protobuf==4.25.9",
    "ml-dtypes==0.4.1",
    # tensorboard imports pkg_resources, which setuptools 82 removed.
    "setuptools>=70,<82",
    "pyyaml>=6.0",
    # Structured configs: YAML merging, --set dotlists, type checks (mater_tf/config/loading.py).
    "omegaconf>=2.3,<2.5",
    "matplotlib>=3.8",
    # TF Serving's request protos: mater-tf export writes its warmup requests with them. It adds no
    # other package (grpcio and protobuf come with TensorFlow); its version follows TensorFlow's.
    "tensorflow-serving-api==2.17.1",
]
EXTRAS = {
    # Media front end (mater-tf prepare / predict on raw clips).
    "media": [
        "av==18.1.0",
        "mtcnn==1.0.0",
        "tensorflow-io==0.37.1",
        "tensorflow-io-gcs-filesystem==0.37.1",
        "tensorflow-hub==0.16.1",
        "tf-keras==2.17.0",
        "scipy>=1.11,<1.15",  # reads MatConvNet .mat files (VGG-M)
    ],
    # [bayesian]: scikit-learn's Gaussian process, which tune.algorithm=bayesian needs.
    "tune": ["keras-tuner[bayesian]==1.4.8", "scikit-learn>=1.5,<1.10"],
    # mater-tf prepare --runner beam (pipelines/beam_prepare.py). 2.72 is the newest Beam whose [gcp]
    # extra accepts protobuf 4; pip alone had not resolved it after 17 min of backtracking among the
    # Google client libraries (their newest need protobuf >= 6.33.5): add -c constraints/beam.txt.
    # crcmod: Beam checks its files' CRCs with it, and every worker prints a notice without it.
    "beam": ["apache-beam[gcp]==2.72.0", "crcmod==1.7"],
    "test": ["pytest>=8", "ruff>=0.5"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="mater-tf",
    version="0.1.0",
    description=("MATER audio-visual emotion recognition (Ghaleb et al., ICIP 2020) in Keras 3 / TensorFlow"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",
    license="MIT",  # the code; the built-in weights have their own licences (LICENSE, docs/models.md)
    license_files=["LICENSE", "mater_tf/builtin/fer2013-face/LICENSE"],
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=find_packages(include=["mater_tf", "mater_tf.*", "pipelines", "pipelines.*"]),
    # The built-in models (mater-tf models) ship inside the package: no download at run time. The
    # voice weights are CC BY-NC-SA 4.0 (learned from RAVDESS), the face network MIT (see LICENSE).
    package_data={
        "mater_tf": [
            "presets/*.yaml",
            "builtin/*.yaml",
            "builtin/*.json",
            "builtin/ravdess-voice/*",
            "builtin/fer2013-face/*",
            "serving/page_templates/*.html",
        ]
    },
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["mater-tf=mater_tf.cli.main:main"]},
)
