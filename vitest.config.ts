import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // e2e suites start daemons (dockerd, containerd, DynamoDB Local); on a 2-core machine run files two at a time.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
