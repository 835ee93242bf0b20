import type { TeamGrant } from '../auth/identity.ts';
import { isAllowedIssuerUrl, type ClaimRule } from '../auth/trust.ts';
import { glob, identityName, level, outcome, parse, positional, print, withStore } from './admin-arguments.ts';
import { runVerb, UsageError, type Command } from './command.ts';

/**
 * `ocireg trust`: which CI ID tokens the registry accepts as the password of user `oidc`, and what they may do.
 * See README "CI without stored secrets (OIDC)" and docs/ci-cd.md.
 */
export const trust = {
  usage: `trust      trust add <name> --issuer <url> --audience <aud> --claim <key>=<glob>... --grant <repo-glob>=<level>...
             trust list | trust rm <name>
             e.g. --issuer https://token.actions.githubusercontent.com --claim repository=acme/* --claim ref=refs/heads/main --grant 'acme/*=push'`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, {
      issuer: { type: 'string' },
      audience: { type: 'string' },
      claim: { type: 'string', multiple: true },
      grant: { type: 'string', multiple: true },
    });
    return withStore(values, async (store) => {
      return runVerb('trust', verb, {
        add: async () => {
          const name = identityName(positional(positionals, 0, 'trust name'), 'trust');
          const issuer = issuerUrl(values.issuer);
          if (typeof values.audience !== 'string' || values.audience === '') throw new UsageError('--audience is required: the `aud` your CI requests for this registry (e.g. its URL)');
          const claims = ((values.claim as string[] | undefined) ?? []).map(claimRule);
          if (claims.length === 0) {
            throw new UsageError(`give at least one --claim: an issuer such as ${issuer} signs tokens for every repository or project it hosts (e.g. --claim repository=acme/app)`);
          }
          const grants = ((values.grant as string[] | undefined) ?? []).map(trustGrant);
          if (grants.length === 0) throw new UsageError('give at least one --grant <repo-glob>=<level>, e.g. --grant acme/app=push');
          return outcome(await store.createTrust({ name, issuer, audience: values.audience, claims, grants, createdAt: Date.now() }), `CI jobs with an ID token from ${issuer} for ${values.audience} matching ${claims.map(formatClaim).join(', ')} may now ${grants.map(formatGrant).join(', ')} (docker login -u oidc)`, `trust ${name} exists already; remove it first (ocireg trust rm ${name})`);
        },
        list: async () => {
          for (const found of (await store.listTrusts()).sort((a, b) => a.name.localeCompare(b.name))) {
            print([found.name, found.issuer, found.audience, found.claims.map(formatClaim).join(' '), found.grants.map(formatGrant).join(' ')].join('\t'));
          }
          return 0;
        },
        rm: async () => {
          const name = positional(positionals, 0, 'trust name');
          return outcome(await store.deleteTrust(name), `removed trust ${name}; registry tokens already issued through it expire within 5 minutes`, `no trust ${name}`);
        },
      }, { remove: 'rm' });
    });
  }) satisfies Command,
};

function issuerUrl(value: unknown): string {
  if (typeof value !== 'string') throw new UsageError('--issuer is required: the `iss` of the ID tokens, e.g. https://token.actions.githubusercontent.com');
  if (!isAllowedIssuerUrl(value)) throw new UsageError(`--issuer must be an https:// URL (http:// only on a loopback address) without query or credentials, got "${value}"`);
  return value;
}

function claimRule(value: string): ClaimRule {
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1 || /\s/.test(value)) throw new UsageError(`--claim is <key>=<glob>, e.g. repository=acme/* or ref=refs/heads/main, got "${value}"`);
  return { claim: value.slice(0, at), glob: value.slice(at + 1) };
}

function trustGrant(value: string): TeamGrant {
  const at = value.lastIndexOf('=');
  if (at <= 0) throw new UsageError(`--grant is <repo-glob>=<level>, e.g. acme/*=push, got "${value}"`);
  return { glob: glob(value.slice(0, at)), level: level(value.slice(at + 1)) };
}

const formatClaim = (rule: ClaimRule) => `${rule.claim}=${rule.glob}`;
const formatGrant = (grant: TeamGrant) => `${grant.glob}=${grant.level}`;
