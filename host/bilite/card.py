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


def render_bundle_docs(meta: dict, example_text: str) -> dict[str, bytes]:
    arch = meta["training"]["config"]["model"]
    return {
        "README.md": render("model_card.md.j2", meta=meta, arch=arch).encode("utf-8"),
        "INSTALL.md": render("device_install.md.j2", meta=meta, example_text=example_text).encode("utf-8"),
    }
