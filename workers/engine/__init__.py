"""The Keras training engine. Importing its submodules imports TensorFlow: do it only in the
process that trains, never in a parent that forks."""
