import type { MetadataStore } from '../../lib/registry/ports.ts';

/**
 * A metadata store seen through a counter of its pull-record writes (recordPull calls), which can also make them
 * fail: for the last-pull contract on the in-process backends, where no network front can count or fail a write.
 * Every other call goes to the store itself (bound, so its private fields work).
 */
export function countedPulls<T extends MetadataStore>(store: T): { metadata: T; pullWrites(): number; failPullWrites(on: boolean): void } {
  let writes = 0;
  let failing = false;
  const metadata = new Proxy(store, {
    get(target, property) {
      if (property === 'recordPull') {
        return (...args: Parameters<MetadataStore['recordPull']>) => {
          writes++;
          if (failing) return Promise.reject(new Error('pull record refused (test)'));
          return target.recordPull(...args);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { metadata, pullWrites: () => writes, failPullWrites: (on) => void (failing = on) };
}
