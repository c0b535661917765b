/**
 * Loads `proto/portunus.proto` once and exposes the two gRPC services (Control, ClientEnrollment)
 * to the server and the client, together with the one grpc-js instance both must share (channel
 * credentials built by one copy of grpc-js are not accepted by another). The decode options here
 * fix the JavaScript shape described in `messages.ts`. Depends on grpc-js and proto-loader only.
 */
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export { grpc };

/** The .proto file shipped beside dist/ (package.json "files" includes proto/). */
export const PROTO_FILE = fileURLToPath(new URL('../proto/portunus.proto', import.meta.url));

const definition = protoLoader.loadSync(PROTO_FILE, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

interface PortunusPackage {
  portunus: {
    v1: {
      Control: grpc.ServiceClientConstructor;
      ClientEnrollment: grpc.ServiceClientConstructor;
    };
  };
}

const loaded = grpc.loadPackageDefinition(definition) as unknown as PortunusPackage;

/** Service definitions for `grpc.Server.addService`. */
export const CONTROL_SERVICE = loaded.portunus.v1.Control.service;
export const ENROLLMENT_SERVICE = loaded.portunus.v1.ClientEnrollment.service;

/** Client constructors: `new ControlClient(target, credentials, options)`. */
export const ControlClient = loaded.portunus.v1.Control;
export const EnrollmentClient = loaded.portunus.v1.ClientEnrollment;
