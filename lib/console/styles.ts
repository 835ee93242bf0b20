/** The console's one stylesheet: system fonts only (no third-party request), a table layout that scrolls on phones. */
export const CONSOLE_CSS = `:root{--fg:#1d2330;--muted:#5b6475;--line:#e3e6ec;--accent:#2456d6;--danger:#b3261e;--bg:#f7f8fa;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}header{display:flex;flex-wrap:wrap;gap:.5rem;justify-content:space-between;align-items:center;padding:.75rem 1.25rem;background:#fff;border-bottom:1px solid var(--line)}
.brand{font-weight:700;font-size:1.1rem;color:var(--fg);text-decoration:none}nav{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center}.who{color:var(--muted)}
.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.25rem .5rem;z-index:1}
main{max-width:84rem;margin:0 auto;padding:1.25rem}h1{font-size:1.4rem;margin:.25rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}h1:focus{outline:none}
a{color:var(--accent)}a:focus-visible,button:focus-visible,input:focus-visible,.scroll:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid var(--line);vertical-align:top;white-space:nowrap}thead th{font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfc}tbody th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}.wrap{white-space:normal;word-break:break-all}
input{font:inherit;padding:.5rem .6rem;border:1px solid #c9ced8;border-radius:5px;width:100%;box-sizing:border-box;margin-bottom:.9rem}
button{font:inherit;padding:.4rem .85rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:5px;cursor:pointer}button:disabled{opacity:.6}
button.quiet,button.copy{background:#fff;color:var(--accent)}button.copy{padding:.1rem .5rem;font-size:.8rem;margin-left:.5rem}button.danger{background:var(--danger);border-color:var(--danger)}
.card{max-width:22rem;margin:2rem auto;background:#fff;border:1px solid var(--line);border-radius:8px;padding:1.5rem}.card label{display:block;font-weight:600;margin-bottom:.25rem}
.error{color:var(--danger)}.empty{color:var(--muted)}.flash{background:#e8f0fe;border:1px solid #c6d6fb;border-radius:6px;padding:.5rem .75rem}.actions{display:flex;gap:.5rem;flex-wrap:wrap}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;background:#fff;border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem}.facts dt{color:var(--muted)}.facts dd{margin:0;min-width:0}
.plain{list-style:none;margin:0;padding:0}figure{margin:0 0 1rem;background:#fff;border:1px solid var(--line);border-radius:6px;padding:.75rem}
svg .label,svg .value{font-size:12px;fill:var(--fg)}svg .unique,.swatch.unique{fill:var(--accent);background:var(--accent)}svg .shared,.swatch.shared{fill:#a9bdf2;background:#a9bdf2}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;vertical-align:middle}.legend{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
@media (max-width:40rem){main{padding:.75rem}header{padding:.5rem .75rem}.facts{grid-template-columns:1fr}.facts dt{margin-top:.35rem}}
`;
