"""The name under which mater-tf's layers and models are registered for Keras saving.

Saved `.keras` files refer to classes as "mater_tf>ClassName", so this never changes.
"""

PACKAGE = "mater_tf"
