// The volunteer's choices, kept in localStorage so a reload or a new visit starts where they left off. Whatever
// is stored is checked: a value from an older page or edited by hand falls back to the default.

export interface Settings {
  /** percent of wall time the page computes, 10..100 (the worker's duty cycle) */
  duty: number;
  /** back off while document.visibilityState is 'hidden' */
  pauseWhenHidden: boolean;
}

const KEY = 'gradswarm.volunteer';

export const DEFAULT_SETTINGS: Settings = { duty: 100, pauseWhenHidden: false };

export function loadSettings(): Settings {
  const s = { ...DEFAULT_SETTINGS };
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Record<keyof Settings, unknown>>;
    if (typeof stored.duty === 'number' && stored.duty >= 10 && stored.duty <= 100) s.duty = Math.round(stored.duty);
    if (typeof stored.pauseWhenHidden === 'boolean') s.pauseWhenHidden = stored.pauseWhenHidden;
  } catch {
    // storage blocked or not JSON: the defaults
  }
  return s;
}

export function saveSettings(s: Settings): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    // storage blocked (private mode, quota): the choice lasts until the tab closes
  }
}
