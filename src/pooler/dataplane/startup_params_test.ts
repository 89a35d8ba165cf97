import assert from "node:assert/strict";
import { backendStartupParams } from "./startup_params.ts";

Deno.test("backendStartupParams() passes every setting and options on, not user, database or replication", () => {
  assert.deepEqual(
    backendStartupParams({
      user: "alice",
      database: "db1",
      replication: "database",
      application_name: "app",
      DateStyle: "Postgres, MDY",
      options: "-c search_path=pg_catalog",
    }),
    {
      application_name: "app",
      DateStyle: "Postgres, MDY",
      options: "-c search_path=pg_catalog",
    },
  );
});
