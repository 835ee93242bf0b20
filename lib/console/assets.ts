import { consoleMain } from './client.ts';

/**
 * The web console's three assets, as strings in the server's own module graph: `ocireg serve` and the Lambda bundle
 * carry them with no build step and no extra infrastructure. The script is the source text of `consoleMain`.
 */
export interface ConsoleAsset {
  contentType: string;
  body: string;
}

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ocireg console</title>
<link rel="stylesheet" href="/console/app.css">
<script src="/console/app.js" defer></script>
</head>
<body><div id="app"><noscript>The ocireg console needs JavaScript.</noscript></div></body>
</html>
`;

const APP_CSS = `:root{--fg:#1d2330;--muted:#5b6475;--line:#e3e6ec;--accent:#2456d6;--bg:#f7f8fa;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}header{display:flex;justify-content:space-between;align-items:center;padding:.75rem 1.25rem;background:#fff;border-bottom:1px solid var(--line)}
.brand{font-weight:700;font-size:1.1rem;color:var(--fg);text-decoration:none}nav{display:flex;gap:.75rem;align-items:center}.who{color:var(--muted)}
main{max-width:64rem;margin:0 auto;padding:1.25rem}h1{font-size:1.4rem;margin:.25rem 0 1rem}
a{color:var(--accent)}a:focus-visible,button:focus-visible,input:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:6px;overflow:hidden}
th,td{text-align:left;padding:.55rem .75rem;border-bottom:1px solid var(--line);vertical-align:top}th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums}.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
input{font:inherit;padding:.5rem .6rem;border:1px solid #c9ced8;border-radius:5px;width:100%;box-sizing:border-box;margin-bottom:.9rem}
button{font:inherit;padding:.45rem .9rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:5px;cursor:pointer}
.card{max-width:22rem;margin:2rem auto;background:#fff;border:1px solid var(--line);border-radius:8px;padding:1.5rem}.card label{display:block;font-weight:600;margin-bottom:.25rem}
.error{color:#b3261e}.empty{color:var(--muted)}
@media (max-width:40rem){th:nth-child(2),td:nth-child(2){display:none}main{padding:.75rem}code{word-break:break-all}}
`;

const APP_JS = `(${consoleMain.toString()})();\n`;

export const CONSOLE_ASSETS: Readonly<Record<string, ConsoleAsset>> = {
  '/': { contentType: 'text/html; charset=utf-8', body: INDEX_HTML },
  '/console/app.css': { contentType: 'text/css; charset=utf-8', body: APP_CSS },
  '/console/app.js': { contentType: 'text/javascript; charset=utf-8', body: APP_JS },
};
