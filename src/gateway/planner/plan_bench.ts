import { initPlanner, planQuery } from "./plan.ts";
import { PlanCache } from "./plan_cache.ts";
import { THROWING_VIEW, VIEW } from "./_testing.ts";

await initPlanner();

const KEYED = "select id, customer, total from orders where id = $1";
const INSERT = "insert into orders (id, customer, total) values ($1, $2, $3)";
const SCATTER = "select inet_server_port() from orders";
const JOIN = "select * from orders o join items i on i.order_id = o.id where o.id = 42";
const DEFAULT_TABLE = "select * from customers c where c.id = $1 and c.name like 'a%'";
const CREATE = "create table t (id bigint primary key, note text) in tg shard by (id)";

Deno.bench(
  "planQuery() fast path (no tablegroup tables)",
  { group: "plan", baseline: true },
  () => {
    planQuery(DEFAULT_TABLE, THROWING_VIEW);
  },
);
Deno.bench("planQuery() keyed SELECT … WHERE id = $1", { group: "plan" }, () => {
  planQuery(KEYED, VIEW);
});
Deno.bench("planQuery() one-row INSERT", { group: "plan" }, () => {
  planQuery(INSERT, VIEW);
});
Deno.bench("planQuery() scattered SELECT", { group: "plan" }, () => {
  planQuery(SCATTER, VIEW);
});
Deno.bench("planQuery() keyed co-located join", { group: "plan" }, () => {
  planQuery(JOIN, VIEW);
});
Deno.bench("planQuery() default-tablegroup table", { group: "plan" }, () => {
  planQuery(DEFAULT_TABLE, VIEW);
});
Deno.bench("planQuery() CREATE TABLE … IN tg SHARD BY", { group: "plan" }, () => {
  planQuery(CREATE, VIEW);
});

const cache = new PlanCache();
let version = 1;
cache.set(KEYED, version, planQuery(KEYED, VIEW));
Deno.bench("PlanCache.get() hit for a keyed SELECT", { group: "plan" }, () => {
  if (cache.get(KEYED, version) === undefined) version++;
});
