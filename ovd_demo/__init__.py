"""The demo application: the whole open-vocabulary pipeline on a generated shapes benchmark.

An application on top of the libraries (``clim`` and ``ovdet`` do not know it exists), run by
``tools/run_demo.py`` (``make demo``). One module per concept:

- :mod:`ovd_demo.settings`: :class:`~ovd_demo.settings.DemoSettings`, the sizes of the benchmark;
- :mod:`ovd_demo.shapes`: the seeded shapes generator (``python -m ovd_demo.shapes --help``);
- :mod:`ovd_demo.configs`: loading the demo configs of ``configs/demo/`` with the demo's options;
- :mod:`ovd_demo.cache`: :class:`~ovd_demo.cache.StageCache`, one cached result per stage and key;
- :mod:`ovd_demo.stages`: the stages, each an MMEngine run of a real config;
- :mod:`ovd_demo.pipeline`: :class:`~ovd_demo.pipeline.DemoPipeline`, the stages in order -> the summary;
- :mod:`ovd_demo.picture`: the grid of val images with ground truth and detections;
- :mod:`ovd_demo.report`: the summary table ``make demo`` ends with.

docs/demo.md says why the demo's settings are what they are.
"""
