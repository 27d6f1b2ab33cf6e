"""The look of the HTML reports (monitoring, review pack): one self-contained page, styled inline, no request
to any outside host (government networks are offline), Chinese first and English beside it."""
from __future__ import annotations

import base64
import html

CSS = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;max-width:1200px;margin:2em auto;"
       "padding:0 1em;color:#222;line-height:1.45}h1{border-bottom:3px solid #1f4e79;padding-bottom:.3em}"
       "h2{color:#1f4e79;border-bottom:1px solid #ccc;margin-top:1.6em}"
       "table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;"
       "padding:3px 7px;text-align:right;white-space:nowrap}th{background:#eef2f7}tr:nth-child(even) td"
       "{background:#fafafa}img{max-width:100%}section{margin-bottom:2em}"
       ".act{background:#f8d7da!important;color:#842029}.watch{background:#fff3cd!important;color:#664d03}"
       ".ok{color:#0f5132}.summary td:first-child,.summary th:first-child{text-align:left}"
       ".verdict{font-size:1.2em;font-weight:bold;padding:.4em .8em;display:inline-block;border-radius:4px}"
       ".pass{background:#d1e7dd;color:#0f5132}.fail{background:#f8d7da;color:#842029}"
       "ul.alerts li{margin:.2em 0}")


def png_img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="{html.escape(alt)}">'


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body``."""
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
