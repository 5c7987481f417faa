"""What the recipe stages run, beyond training and inference: the job runner,
shards, audio formatting, duration filtering, label lists and the Hugging Face
model card (each driven by an entry point in ``espnet2_merit.bin``)."""
