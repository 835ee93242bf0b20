import { fileURLToPath } from 'node:url';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';

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

/** One of the registry's functions: `lambdas/<entry>`'s `handler`, Node.js 24 on ARM, bundled as above. */
export function registryFunction(scope: Construct, id: string, entry: string, props: Omit<NodejsFunctionProps, 'entry' | 'handler' | 'runtime' | 'architecture' | 'bundling'>): NodejsFunction {
  return new NodejsFunction(scope, id, {
    entry: fileURLToPath(new URL(`../../lambdas/${entry}`, import.meta.url)),
    handler: 'handler',
    runtime: Runtime.NODEJS_24_X,
    architecture: Architecture.ARM_64,
    ...props,
    bundling: FUNCTION_BUNDLING,
  });
}
