#!/usr/bin/env python3
"""Writes expected.json: the real chat templates in templates/ rendered by Jinja2 itself, set up as transformers'
apply_chat_template sets it up (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
raise_exception, tojson as json.dumps(ensure_ascii=False)); strftime_now is left out, as Forgetless leaves it out.
An outside reference for ChatTemplateTests, not a dependency of the project: rerun it (python3 with jinja2, e.g.
Debian's python3-jinja2) after changing the cases, and read the diff.
"""
import json
from pathlib import Path

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = Path(__file__).parent

def raise_exception(message):
    raise ValueError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

# llama.cpp's test conversation (tests/test-chat-template.cpp), and a training conversation without a system turn.
llama_cpp = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there"},
    {"role": "user", "content": "Who are you"},
    {"role": "assistant", "content": "   I am an assistant   "},
    {"role": "user", "content": "Another question"},
]
training = [
    {"role": "user", "content": "Pronounce \"wrecking\" in ARPAbet:"},
    {"role": "assistant", "content": " R EH1 K IH0 NG"},
    {"role": "user", "content": "And \"café\"?"},
    {"role": "assistant", "content": "K AE0 F EY1"},
]
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

families = {
    "Qwen-Qwen2.5-7B-Instruct": {"bos_token": "", "eos_token": "<|im_end|>"},
    "meta-llama-Llama-3.1-8B-Instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "meta-llama-Llama-3.2-3B-Instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "HuggingFaceTB-SmolLM2-135M-Instruct": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "mistralai-Mistral-7B-Instruct-v0.2": {"bos_token": "<s>", "eos_token": "</s>"},
    "mistralai-Mistral-Nemo-Instruct-2407": {"bos_token": "<s>", "eos_token": "</s>"},
}

cases = []
for name, tokens in families.items():
    template = env.from_string((here / "templates" / f"{name}.jinja").read_text())
    variants = [("llama.cpp conversation", llama_cpp, True, None), ("training conversation", training, False, None),
                ("training prompt", training[:3], True, None)]
    if name.startswith("Qwen") or name.startswith("meta-llama"):
        variants.append(("with tools", training[:1], True, tools))
    for label, messages, generation, tool_list in variants:
        variables = dict(tokens, messages=messages, add_generation_prompt=generation)
        if tool_list is not None:
            variables["tools"] = tool_list
        case = {"template": name, "case": label, "variables": variables}
        try:
            case["expected"] = template.render(**variables)
        except ValueError as e:
            case["error"] = str(e)
        cases.append(case)

(here / "expected.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
print(f"{len(cases)} cases")
