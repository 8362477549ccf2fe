"""A tiny randomly initialised causal LM for tests: no download, built in milliseconds."""

from __future__ import annotations

import torch

TITLES = ["Toy Story (1995)", "Heat (1995)", "Jumanji (1995)", "Casino (1995)", "Sabrina (1995)",
          "Balto (1995)", "Nixon (1995)", "GoldenEye (1995)", "Babe (1995)", "Clueless (1995)"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_llm():
    """(model, tokenizer): a 2-layer Llama with random weights and a 400-token BPE tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([" ".join(TITLES) + " recommender system items candidate assistant user"] * 4, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    return LlamaForCausalLM(config).eval(), tok


def save_tiny_llm(folder) -> str:
    """The tiny model and tokenizer saved as a model folder, as a user would pass one."""
    model, tok = tiny_llm()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)
