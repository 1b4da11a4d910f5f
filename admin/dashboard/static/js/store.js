// store.js: keeping the newest copy of each rollout when a snapshot and live
// events race each other.

// isNewer says whether b should replace a: Kubernetes resourceVersions are
// opaque, but etcd's are integers, so compare them as such when both are;
// otherwise the later arrival wins.
export function isNewer(a, b) {
  const ra = a?.metadata?.resourceVersion;
  const rb = b?.metadata?.resourceVersion;
  if (!a || !ra || !rb || !/^\d+$/.test(ra) || !/^\d+$/.test(rb)) return true;
  return BigInt(rb) >= BigInt(ra);
}

export const PHASES = ['Stable', 'Progressing', 'Paused', 'ManualSplit', 'Promoted', 'RolledBack', 'Failed'];
