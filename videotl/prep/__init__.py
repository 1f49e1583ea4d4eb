"""Dataset preparation: from official releases to training-ready videos and lists.

* ``kinetics``, ``avid``, ``charades``: the releases' annotation formats; ``single_label``
  matches annotations to video files and writes the lists the loaders read.
* ``encode`` (with ``encode_settings``, ``pyav_encoder``, ``ffmpeg_encoder``), ``resize``:
  re-encoding videos (short side, frame rate, keyframes), in parallel, resumably and atomically.
* ``verify``: decoding every listed video with the training reader, writing an exclusion list.
* ``pool``, ``progress``, ``files``: worker processes with time limits, progress display, file
  helpers.

The scripts in ``data_prep/`` are thin command-line fronts to these; see docs/DATASETS.md.
"""
