"""Render the bundle's human-readable files from ``templates/`` (package ``bilite.templates``)."""

from __future__ import annotations

from importlib import resources


def render(template_name: str, **context) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("bilite.templates").joinpath(name).read_text("utf-8")
        ),
        undefined=jinja2.StrictUndefined,  # a field missing from metadata is a bug, not a blank
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template_name).render(**context)


MAX_PICTURE_LABELS = 20  # beyond this a confusion picture is unreadable: list top confusions


def render_bundle_docs(meta: dict, example_text: str) -> dict[str, bytes]:
    from .charts import confusion_svg, size_accuracy_svg, top_confusions

    if "source" in meta:  # a user's own model (bilite bundle --model): no training section
        return {
            "README.md": render("model_card_byo.md.j2", meta=meta, example_text=example_text,
                                layer_text=layer_text).encode("utf-8"),
            "INSTALL.md": render("device_install.md.j2", meta=meta, example_text=example_text).encode("utf-8"),
            "bilite-smoke.service": render("bilite-smoke.service.j2", meta=meta).encode("utf-8"),
        }
    arch = meta["training"]["config"]["model"]
    confusion = meta["metrics"]["confusion"]
    picture = len(confusion["labels"]) <= MAX_PICTURE_LABELS
    docs = {
        "README.md": render("model_card.md.j2", meta=meta, arch=arch, picture=picture,
                            confusions=top_confusions(confusion["labels"], confusion["matrix"]),
                            example_text=example_text).encode("utf-8"),
        "INSTALL.md": render("device_install.md.j2", meta=meta, example_text=example_text).encode("utf-8"),
        "bilite-smoke.service": render("bilite-smoke.service.j2", meta=meta).encode("utf-8"),
    }
    if picture:
        docs["confusion.svg"] = confusion_svg(confusion["labels"], confusion["matrix"]).encode("utf-8")
    sweep = meta.get("quantization_sweep")
    docs["card.html"] = render(
        "model_card.html.j2", meta=meta, sweep=sweep,
        chart=size_accuracy_svg(sweep["rows"]) if sweep else "",
        confusion_svg=docs.get("confusion.svg", b"").decode("utf-8")).encode("utf-8")
    return docs


def layer_text(layer: dict) -> str:
    """One layer of a user's model spec, as a short architecture string."""
    kind = layer["kind"]
    if kind == "embedding":
        return f"Embedding({layer['input_dim']} × {layer['output_dim']}{', mask_zero' if layer['mask_zero'] else ''})"
    if kind == "rnn":
        cell = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}[layer["cell"]]
        inner = f"{cell} {layer['units']}{', sequences' if layer['return_sequences'] else ''}"
        return f"Bidirectional({inner}, {layer['merge_mode']})" if layer["bidirectional"] else inner
    if kind == "dense":
        return f"Dense({layer['units']}, {layer['activation']})"
    if kind == "pool":
        return f"Global{layer['pool'].title()}Pooling1D"
    return f"Activation({layer['activation']})"
