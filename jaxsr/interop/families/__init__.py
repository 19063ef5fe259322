"""One rule table per architecture family: `ARCH`, `detect(state_dict)` and
`to_jaxsr(state_dict, hparams)` (see `jaxsr.interop.detect`)."""
