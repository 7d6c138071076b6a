// Label reads and Kubernetes label selectors (matchLabels plus matchExpressions In/NotIn/Exists/
// DoesNotExist, all ANDed), as metav1.LabelSelectorAsSelector evaluates them.
import type { LabelSelector } from '../kinds/common.ts';

export type Labels = Readonly<Record<string, string>>;

export const NO_LABELS: Labels = Object.freeze({});

/** A label's value; own keys only, so `constructor` and friends are never labels. */
export function label(labels: Labels | null | undefined, key: string): string | undefined {
  return labels && Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Whether labels satisfy selector. An empty selector matches everything. */
export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (label(labels, key) !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const value = label(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        // A missing label is "not in" any set, as in Kubernetes.
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}

/** Whether every key/value of a Service's `spec.selector` is on the pod. */
export function labelsMatch(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => label(labels, k) === v);
}
