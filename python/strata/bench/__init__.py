"""``python -m strata.bench``: what a Python user of Strata gets, measured at the user's call,
side by side with the tools that user would otherwise pick, in one run.

- ``package``: the dataset loop, the GIL, zero copy (the default).
- ``ckpt``: ``strata.checkpoint`` and Strata's DCP writer against torch DCP (a local
  FileSystemWriter, then an upload) and s3torchconnector's DCP writer and reader.
- ``models``: ``strata.models.load``/``stream`` against the run:ai model streamer.

``ckpt`` and ``models`` run in two regimes: **A**, the link emulator's ``s3`` profile in front
of the in-process S3 server (10 MiB/s per connection, 160 MiB/s in all); **B**, Garage on
loopback with no emulator (the machine is the limit).
"""
