import { describe } from 'vitest';
import { authRegistry } from '../support/auth-registry.ts';
import { call } from '../support/app-client.ts';
import { authorizationMatrix } from './authorization-matrix.ts';

describe('authorization matrix (in-process, memory stores)', () => {
  authorizationMatrix(async () => {
    const registry = await authRegistry();
    return {
      request: (method, path, options = {}) => call(registry.app, method, path, options),
      addUser: (name, grants, options = {}) => registry.addUser(name, grants, options),
      revokeToken: async (id) => void (await registry.identities.deleteToken(id)),
      async addTeam(name, grants, members) {
        await registry.identities.createTeam({ name, createdAt: Date.now() });
        for (const [glob, level] of grants) await registry.identities.setTeamGrant(name, { glob, level });
        for (const member of members) await registry.identities.addTeamMember(name, member);
      },
      removeTeamMember: async (team, user) => void (await registry.identities.removeTeamMember(team, user)),
      setPublic: (glob) => registry.identities.setPublic(glob, true),
      signingKeyPem: registry.pem,
    };
  });
});
