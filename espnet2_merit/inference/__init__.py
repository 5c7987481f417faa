"""Using a trained model: ``Speech2EmotionEnhance`` and its result types,
long-audio windowing, decoding a data directory, the ``merit`` commands and ONNX
export."""
