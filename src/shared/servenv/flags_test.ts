import assert from "node:assert/strict";
import { COMMON_FLAGS, envName, type FlagSpecs, parseFlags } from "./flags.ts";

const SPECS = {
  ...COMMON_FLAGS,
  "grpc-port": { type: "number", default: 15270, help: "gRPC port" },
  "ratio": { type: "number", default: 0.5, help: "A fraction" },
  "verbose": { type: "boolean", default: false, help: "Say more" },
  "keep": { type: "boolean", default: true, help: "Keep things" },
} as const satisfies FlagSpecs;

/** Runs `fn` with a temporary JSON config file holding `value`; removes it afterwards. */
async function withConfig(
  value: unknown,
  fn: (path: string) => void | Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, typeof value === "string" ? value : JSON.stringify(value));
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

/** Asserts that `fn` throws an Error whose message is exactly one line matching `re`. */
function assertOneLineError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, re);
    assert.equal(e.message.includes("\n"), false, `not one line: ${JSON.stringify(e.message)}`);
    return true;
  });
}

Deno.test("parseFlags() gives every default when nothing is set", () => {
  const cfg = parseFlags(SPECS, [], {});
  assert.deepEqual({ ...cfg }, {
    "cluster": "local",
    "cell": "zone1",
    "topo-global-address": "127.0.0.1:2379",
    "bind-address": "127.0.0.1",
    "log-level": "info",
    "grpc-ca-file": "",
    "grpc-cert-file": "",
    "grpc-key-file": "",
    "grpc-insecure": false,
    "config": "",
    "grpc-port": 15270,
    "ratio": 0.5,
    "verbose": false,
    "keep": true,
  });
});

Deno.test("parseFlags() reads --name value and --name=value from the command line", () => {
  const cfg = parseFlags(SPECS, ["--cell", "zone2", "--cluster=prod", "--grpc-port", "16000"], {});
  assert.equal(cfg.cell, "zone2");
  assert.equal(cfg.cluster, "prod");
  assert.equal(cfg["grpc-port"], 16000);
});

Deno.test("envName() maps --grpc-port to MULTIGRES_GRPC_PORT", () => {
  assert.equal(envName("grpc-port"), "MULTIGRES_GRPC_PORT");
  assert.equal(envName("topo-global-address"), "MULTIGRES_TOPO_GLOBAL_ADDRESS");
});

Deno.test("parseFlags() takes a value from env MULTIGRES_* when the command line has none", () => {
  const cfg = parseFlags(SPECS, [], { MULTIGRES_CELL: "zone3", MULTIGRES_GRPC_PORT: "17000" });
  assert.equal(cfg.cell, "zone3");
  assert.equal(cfg["grpc-port"], 17000);
});

Deno.test("parseFlags() reads the process environment by default", () => {
  const name = envName("flags-test-probe");
  Deno.env.set(name, "from-env");
  try {
    const specs = { "flags-test-probe": { type: "string", default: "d", help: "" } } as const;
    assert.equal(parseFlags(specs, [])["flags-test-probe"], "from-env");
  } finally {
    Deno.env.delete(name);
  }
});

Deno.test("parseFlags() lets the command line beat env, env beat --config, --config beat defaults", async () => {
  await withConfig({ cell: "file", cluster: "file", "log-level": "warn" }, (path) => {
    const cfg = parseFlags(SPECS, ["--config", path, "--cell", "cli"], {
      MULTIGRES_CELL: "env",
      MULTIGRES_CLUSTER: "env",
    });
    assert.equal(cfg.cell, "cli");
    assert.equal(cfg.cluster, "env");
    assert.equal(cfg["log-level"], "warn");
    assert.equal(cfg["bind-address"], "127.0.0.1");
  });
});

Deno.test("parseFlags() finds the config file through MULTIGRES_CONFIG too", async () => {
  await withConfig({ cell: "from-file", "grpc-port": 18000, verbose: true }, (path) => {
    const cfg = parseFlags(SPECS, [], { MULTIGRES_CONFIG: path });
    assert.equal(cfg.cell, "from-file");
    assert.equal(cfg["grpc-port"], 18000);
    assert.equal(cfg.verbose, true);
  });
});

Deno.test("parseFlags() coerces numbers from every source", async () => {
  assert.equal(parseFlags(SPECS, ["--ratio", "0.25"], {}).ratio, 0.25);
  assert.equal(parseFlags(SPECS, [], { MULTIGRES_RATIO: " 2 " }).ratio, 2);
  await withConfig({ ratio: "3.5", "grpc-port": 1 }, (path) => {
    const cfg = parseFlags(SPECS, ["--config", path], {});
    assert.equal(cfg.ratio, 3.5);
    assert.equal(cfg["grpc-port"], 1);
  });
});

Deno.test("parseFlags() coerces booleans: bare flag, env words and JSON booleans", async () => {
  assert.equal(parseFlags(SPECS, ["--verbose"], {}).verbose, true);
  for (const word of ["1", "true", "TRUE", "yes", "on"]) {
    assert.equal(parseFlags(SPECS, [], { MULTIGRES_VERBOSE: word }).verbose, true, word);
  }
  for (const word of ["0", "false", "no", "off", ""]) {
    assert.equal(parseFlags(SPECS, [], { MULTIGRES_KEEP: word }).keep, false, word);
  }
  await withConfig({ keep: false, verbose: "yes" }, (path) => {
    const cfg = parseFlags(SPECS, ["--config", path], {});
    assert.equal(cfg.keep, false);
    assert.equal(cfg.verbose, true);
  });
});

Deno.test("parseFlags() refuses a bad number with one line naming the flag", async () => {
  assertOneLineError(
    () => parseFlags(SPECS, ["--grpc-port", "12x"], {}),
    /^Invalid value for --grpc-port: "12x" is not a number$/,
  );
  assertOneLineError(
    () => parseFlags(SPECS, [], { MULTIGRES_GRPC_PORT: "" }),
    /--grpc-port: "" is not a number/,
  );
  assertOneLineError(
    () => parseFlags(SPECS, ["--ratio", "Infinity"], {}),
    /--ratio: "Infinity" is not a number/,
  );
  await withConfig({ "grpc-port": "lots" }, (path) => {
    assertOneLineError(
      () => parseFlags(SPECS, ["--config", path], {}),
      /^Invalid value for --grpc-port: "lots" is not a number$/,
    );
  });
});

Deno.test("parseFlags() refuses a bad boolean with one line naming the flag", () => {
  assertOneLineError(
    () => parseFlags(SPECS, [], { MULTIGRES_VERBOSE: "maybe" }),
    /^Invalid value for --verbose: "maybe" is not a boolean$/,
  );
});

Deno.test("parseFlags() refuses an unknown flag, naming it", () => {
  assertOneLineError(
    () => parseFlags(SPECS, ["--grpc-prot", "1"], {}),
    /^Invalid arguments: .*'--grpc-prot'/,
  );
});

Deno.test("parseFlags() refuses positional arguments and a flag without its value", () => {
  assertOneLineError(() => parseFlags(SPECS, ["zone1"], {}), /^Invalid arguments: .*'zone1'/);
  assertOneLineError(() => parseFlags(SPECS, ["--cell"], {}), /^Invalid arguments: .*--cell/);
});

Deno.test("parseFlags() refuses a missing or malformed config file, naming it", async () => {
  const missing = "/nonexistent/multigres-flags-test.json";
  assertOneLineError(
    () => parseFlags(SPECS, ["--config", missing], {}),
    new RegExp(`^Cannot read config file ${missing}: `),
  );
  await withConfig("{not json", (path) => {
    assert.throws(
      () => parseFlags(SPECS, ["--config", path], {}),
      (e: unknown) => e instanceof Error && e.message.startsWith(`Invalid config file ${path}: `),
    );
  });
  await withConfig([1, 2], (path) => {
    assertOneLineError(
      () => parseFlags(SPECS, ["--config", path], {}),
      /Invalid config file .*: not a JSON object$/,
    );
  });
});

Deno.test("parseFlags() returns a frozen config", () => {
  const cfg = parseFlags(SPECS, ["--cell", "zone2"], {});
  assert.ok(Object.isFrozen(cfg));
  assert.throws(() => {
    (cfg as { cell: string }).cell = "zone9";
  }, TypeError);
  assert.equal(cfg.cell, "zone2");
});

Deno.test("parseFlags() lets the command line turn off a boolean the env turned on", () => {
  const specs = { "stop-on-exit": { type: "boolean", default: false, help: "x" } } as const;
  const env = { MULTIGRES_STOP_ON_EXIT: "true" };
  assert.equal(parseFlags(specs, [], env)["stop-on-exit"], true);
  assert.equal(parseFlags(specs, ["--stop-on-exit=false"], env)["stop-on-exit"], false);
  assert.equal(parseFlags(specs, ["--no-stop-on-exit"], env)["stop-on-exit"], false);
  assert.equal(parseFlags(specs, ["--stop-on-exit"], {})["stop-on-exit"], true);
});

Deno.test("parseFlags() reports a bad command line on one line", () => {
  const specs = {
    "name": { type: "string", default: "", help: "x" },
    "port": { type: "number", default: 1, help: "y" },
  } as const;
  assert.throws(() => parseFlags(specs, ["--name", "--port", "3"], {}), (e: Error) => {
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
});
