/**
 * Runs a component's `main`: any error thrown while starting is printed as one clear line on
 * stderr and the process exits 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((e) => {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    Deno.exit(1);
  });
}
