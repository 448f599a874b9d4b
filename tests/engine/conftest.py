"""Engine tests run without a database or network: the model is `TestModel` or a
scripted double passed through a ModelResolver (helpers.py), never patched."""
