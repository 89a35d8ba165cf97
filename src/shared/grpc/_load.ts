import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import {
  decodeDataPlaneRequest,
  decodeDataPlaneResponse,
  encodeDataPlaneRequest,
  encodeDataPlaneResponse,
} from "./dataplane_codec.ts";

/** Options every proto is loaded with; the TypeScript shapes in types.ts assume them. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const SERVICE_FILES = [
  "pgctldservice.proto",
  "multipoolerservice.proto",
  "multiorchservice.proto",
  "multigatewayservice.proto",
];

/** The folder holding the .proto files (bundled with `deno compile --include proto`). */
export function protoDir(): string {
  return fileURLToPath(new URL("../../../proto/", import.meta.url));
}

let loaded: grpc.GrpcObject | undefined;

/** Loads every proto once. */
export function protos(): grpc.GrpcObject {
  if (!loaded) {
    const def = protoLoader.loadSync(SERVICE_FILES, {
      ...LOADER_OPTIONS,
      includeDirs: [protoDir()],
    });
    // The data plane carries every frame: its messages skip protobufjs (see dataplane_codec.ts).
    const service = def["multigres.multipooler.MultiPooler"] as grpc.ServiceDefinition;
    Object.assign(service.DataPlane, {
      requestSerialize: encodeDataPlaneRequest,
      requestDeserialize: decodeDataPlaneRequest,
      responseSerialize: encodeDataPlaneResponse,
      responseDeserialize: decodeDataPlaneResponse,
    });
    loaded = grpc.loadPackageDefinition(def);
  }
  return loaded;
}

export type ServiceName = "Pgctld" | "MultiPooler" | "MultiOrch" | "MultiGateway";

const SERVICE_PATHS: Record<ServiceName, string[]> = {
  Pgctld: ["multigres", "pgctld", "Pgctld"],
  MultiPooler: ["multigres", "multipooler", "MultiPooler"],
  MultiOrch: ["multigres", "multiorch", "MultiOrch"],
  MultiGateway: ["multigres", "multigateway", "MultiGateway"],
};

/** The generated client constructor (which also carries `.service`) of one service. */
export function serviceCtor(name: ServiceName): grpc.ServiceClientConstructor {
  // deno-lint-ignore no-explicit-any
  let node: any = protos();
  for (const part of SERVICE_PATHS[name]) node = node[part];
  return node as grpc.ServiceClientConstructor;
}
