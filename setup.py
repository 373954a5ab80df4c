"""clim-ovd: CLIM region-aware CLIP refinement and open-vocabulary detectors on MMDetection 3.x."""
from setuptools import find_packages, setup

setup(
    name="clim-ovd",
    version="0.1.0",
    description="CLIM (Contrastive Language-Image Mosaic) and OV-COCO detectors for MMEngine/MMDetection 3.x",
    packages=find_packages(include=["clim", "clim.*", "ovdet", "ovdet.*", "benchmarks", "ovd_demo"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.6",
        "mmengine>=0.10.7",
        "mmdet>=3.3.0",
        "open_clip_torch>=3.3.0",
        "pycocotools",
        "numpy",
    ],
)
