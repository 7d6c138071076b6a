// Readiness as Istio users need it (istio/istio#46495): ready only when the listeners are bound,
// the certificate is loaded and the first good configuration is applied; not ready from the first
// moment of shutdown, so the Service stops sending new tunnels before anything closes.
export type ReadinessGate = 'listeners' | 'certificate' | 'config';

export class Readiness {
  readonly #open = new Set<ReadinessGate>();
  readonly #waiting = new Map<ReadinessGate, Array<() => void>>();
  #draining = false;

  pass(gate: ReadinessGate): void {
    this.#open.add(gate);
    for (const resolve of this.#waiting.get(gate) ?? []) resolve();
    this.#waiting.delete(gate);
  }

  /** Resolves once `gate` has passed (at once if it already has). */
  passed(gate: ReadinessGate): Promise<void> {
    if (this.#open.has(gate)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#waiting.get(gate) ?? [];
      list.push(resolve);
      this.#waiting.set(gate, list);
    });
  }

  startDraining(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Undefined when ready; otherwise what is missing, in words. */
  notReadyBecause(): string | undefined {
    if (this.#draining) return 'draining';
    const missing = (['listeners', 'certificate', 'config'] as const).filter((g) => !this.#open.has(g));
    return missing.length > 0 ? `waiting for ${missing.join(', ')}` : undefined;
  }
}
