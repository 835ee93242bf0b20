import { OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

/** How every function of the registry is bundled (esbuild, no Docker): one ES module per function. */
export const FUNCTION_BUNDLING: BundlingOptions = {
  minify: true,
  sourceMap: false,
  format: OutputFormat.ESM,
  target: 'node24',
  mainFields: ['module', 'main'],
  // Everything is bundled, the AWS SDK included: one pinned version, and only the clients imported.
  externalModules: [],
  // CommonJS dependencies inside an ES module bundle still call require() for Node built-ins.
  banner: "import { createRequire as __ociregCreateRequire } from 'node:module'; const require = __ociregCreateRequire(import.meta.url);",
  forceDockerBundling: false,
};
