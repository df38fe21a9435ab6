"""mater-tf: MATER audio-visual emotion recognition in Keras 3 / TensorFlow.

Importing the package has no side effects and does not import TensorFlow; the
command line (`mater_tf.cli.main`) sets the process environment first.
"""

__version__ = "0.1.0"
