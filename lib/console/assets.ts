import { consoleMain } from './client.ts';
import { consoleKit } from './kit.ts';
import { repositoriesPage } from './repositories-page.ts';
import { repositoryPage } from './repository-page.ts';
import { CONSOLE_CSS } from './styles.ts';
import { tagPage } from './tag-page.ts';
import { usagePage } from './usage-page.ts';

/**
 * The web console's three assets, as strings in the server's own module graph: `ocireg serve` and the Lambda bundle
 * carry them with no build step and no extra infrastructure.
 *
 * The script is put together from the source text of one function per module (kit, router, one per page): whatever
 * compiled the server (Node's type stripping, vitest, esbuild's minifier for the Lambda) compiled them too, and a
 * function's text stays valid JavaScript as long as it names nothing outside itself but browser globals. Each page
 * receives the kit as a parameter instead of importing it; types are erased. test/console/ loads the served
 * script — from `ocireg serve` and from the minified Lambda bundle — in chromium, where a stray outside name fails.
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

const APP_JS = `'use strict';
(${consoleMain})((${consoleKit})(), {
repositories: (${repositoriesPage}),
repository: (${repositoryPage}),
tag: (${tagPage}),
usage: (${usagePage}),
});
`;

export const CONSOLE_ASSETS: Readonly<Record<string, ConsoleAsset>> = {
  '/': { contentType: 'text/html; charset=utf-8', body: INDEX_HTML },
  // The same page under the console's own route, for links that should not depend on what `/` serves.
  '/console/': { contentType: 'text/html; charset=utf-8', body: INDEX_HTML },
  '/console/app.css': { contentType: 'text/css; charset=utf-8', body: CONSOLE_CSS },
  '/console/app.js': { contentType: 'text/javascript; charset=utf-8', body: APP_JS },
};
