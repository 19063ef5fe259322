"""Export of trained generators for deployment without jaxsr: `python -m jaxsr.export`.

Formats (each module imports its converter's packages only when used):
  stablehlo   `jax.export` serialized program (`stablehlo_export`).
  savedmodel  TF SavedModel from `jax2tf` (`tf_export`); tflite: the TFLite file from it.
  onnx        ONNX by jaxsr's jaxpr translator (`onnx_export`, `jaxpr_to_onnx`).
All are made from one `program.InferenceProgram`; `runtimes` loads any of them to run it.
"""
