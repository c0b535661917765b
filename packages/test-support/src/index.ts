/** Test helpers (tests only; never imported by product code). */
export {
  AUDIT_WRITER_PROCESS,
  CLIENT_BIN,
  REPO_ROOT,
  SERVER_BIN,
  STANDALONE_BIN,
} from './paths.js';
export { ProcessGroup, type LogLine, type RunningProcess, type SpawnOptions } from './processes.js';
export { tempDirs, type TempDirs } from './temp-dir.js';
export {
  CUT_DISK_SCRIPT,
  PowerLossDisk,
  powerLossUnsupportedReason,
  selfCheck,
  type RestartReport,
} from './power-loss.js';
export { waitFor, type WaitOptions } from './wait.js';
export { recordingLogger, type RecordedLine, type RecordingLogger } from './logger.js';
export { FakeDnsServer, type DnsQuery, type DnsZoneEntry } from './dns-server.js';
export { freePort, freePortRun } from './ports.js';
export { CHROMIUM, launchBrowser, screenshot, type Browser } from './browser.js';
export {
  captureClientHello,
  selfSignedCertificate,
  tlsAsk,
  tlsEchoServer,
  type TestCertificate,
  type TlsAnswer,
} from './tls.js';
export { WebhookReceiver, type ReceivedWebhook } from './webhook-receiver.js';
