// The volunteer's identity token (coordinator/swarm/identity.ts), kept in localStorage so a reload, a new visit or
// a reconnect presents the same identity and the coordinator keeps the volunteer's record under it (per origin, so
// per coordinator). Storage blocked (private mode): the worker keeps the token in memory for the page's life.
import type { IdentityStore } from '../worker/loop.ts';

const KEY = 'gradswarm.identity';

export const pageIdentity: IdentityStore = {
  load() {
    try {
      return localStorage.getItem(KEY) ?? undefined;
    } catch {
      return undefined;
    }
  },
  save(token) {
    try {
      localStorage.setItem(KEY, token);
    } catch {
      // storage blocked: the token lasts until the tab closes
    }
  },
};
