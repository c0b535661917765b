// Component tests of the forms in jsdom: real components, real i18n, and each invalid input named
// on its own field before anything is sent (fetch is replaced by a recorder that fails the test if
// a request leaves for an invalid form). The push dialog's request builder is tested directly.
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import '../i18n/index.js';
import i18n from '../i18n/index.js';
import { LoginPage } from './Login.js';
import { OnboardingPage } from './Onboarding.js';
import { buildPushRequest, emptyRuleForm, emptyTarget } from './rule-form.js';

const t = i18n.t.bind(i18n) as (key: string, options?: Record<string, unknown>) => string;
let requests: string[] = [];

beforeEach(() => {
  requests = [];
  globalThis.fetch = (input: RequestInfo | URL) => {
    requests.push(
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
    );
    return Promise.resolve(new Response('{}', { status: 200 }));
  };
});
afterEach(cleanup);

const type = (label: string | RegExp, value: string) => {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
};

describe('onboarding form', () => {
  it('has the labelled fields the operator expects', () => {
    render(<OnboardingPage onDone={() => undefined} />);
    for (const label of [
      'Setup token',
      'User ID',
      'Display name',
      'Password',
      'Confirm password',
    ]) {
      expect(screen.getByLabelText(label)).toBeTruthy();
    }
  });

  it('names every missing field and a short or mismatched password, sending nothing', () => {
    render(<OnboardingPage onDone={() => undefined} />);
    type('Password', 'short');
    type('Confirm password', 'other');
    fireEvent.click(screen.getByRole('button', { name: 'Create superadmin' }));
    expect(screen.getByText('Setup token is required')).toBeTruthy();
    expect(screen.getByText('User ID is required')).toBeTruthy();
    expect(screen.getByText('Display name is required')).toBeTruthy();
    expect(screen.getByText('Passwords need at least 12 characters')).toBeTruthy();
    expect(screen.getByText('Passwords do not match')).toBeTruthy();
    expect(requests).toEqual([]);
  });

  it('sends the onboarding request once the form is valid', async () => {
    let done = false;
    render(<OnboardingPage onDone={() => (done = true)} />);
    type('Setup token', 'tok');
    type('User ID', 'admin');
    type('Display name', 'Admin');
    type('Password', 'a long enough password');
    type('Confirm password', 'a long enough password');
    fireEvent.click(screen.getByRole('button', { name: 'Create superadmin' }));
    await expect.poll(() => done).toBe(true);
    expect(requests).toEqual(['/v1/auth/onboarding']);
  });
});

describe('login form', () => {
  it('requires both fields and shows the session-expired notice', () => {
    render(<LoginPage notice="Session expired" onSignedIn={() => undefined} />);
    expect(screen.getByRole('status').textContent).toBe('Session expired');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(screen.getByText('User ID is required')).toBeTruthy();
    expect(screen.getByText('Password is required')).toBeTruthy();
    expect(requests).toEqual([]);
  });
});

describe('push dialog request', () => {
  it('sends a single plain target in the legacy shape, a range mapped port for port', () => {
    const form = { ...emptyRuleForm('edge-1'), listenPort: '8000', listenPortEnd: '8009' };
    form.targets = [{ ...emptyTarget(), host: ' 10.0.0.1 ', port: '9000' }];
    expect(buildPushRequest(form, t)).toEqual({
      errors: {},
      request: {
        client: 'edge-1',
        protocol: 'tcp',
        listen_port: 8000,
        listen_port_end: 8009,
        target_host: '10.0.0.1',
        target_port: 9000,
        target_port_end: 9009,
      },
    });
  });

  it('sends targets[] for several targets, PROXY, health, SNI or caps', () => {
    const form = {
      ...emptyRuleForm('edge-1'),
      listenPort: '443',
      healthInterval: '10',
      sniPattern: 'a.example.com',
      targets: [
        { host: 'a', port: '1', priority: '0', proxy: 'v2' as const },
        { host: 'b', port: '2', priority: '', proxy: '' as const },
      ],
    };
    form.caps = { ...form.caps, bandwidth_in_bps: '1000' };
    const { request } = buildPushRequest(form, t);
    expect(request?.targets).toEqual([
      { host: 'a', port: 1, priority: 0, proxy_protocol: 'v2' },
      { host: 'b', port: 2 },
    ]);
    expect(request?.target_host).toBeUndefined();
    expect(request?.health_check_interval_secs).toBe(10);
    expect(request?.sni_pattern).toBe('a.example.com');
    expect(request?.rate_limit).toEqual({ bandwidth_in_bps: 1000 });
  });

  it('names each bad field: port range, missing host, missing client, zero cap', () => {
    const form = { ...emptyRuleForm(''), listenPort: '0', listenPortEnd: '65536' };
    form.targets = [emptyTarget(), { ...emptyTarget(), host: 'x', port: 'abc' }];
    form.caps = { ...form.caps, concurrent_connections: '0' };
    const { request, errors } = buildPushRequest(form, t);
    expect(request).toBeUndefined();
    expect(errors).toEqual({
      client: 'Client is required',
      listenPort: 'Listen port must be a port 1–65535',
      listenPortEnd: 'Listen port end must be a port 1–65535',
      'targets.0.host': 'Target host is required',
      'targets.0.port': 'Target port is required',
      'targets.1.port': 'Target port must be a port 1–65535',
      'caps.concurrent_connections': 'Concurrent connections must be a whole number above 0',
    });
  });

  it('checks the SNI pattern with the server grammar and sends it lower-cased', () => {
    const form = { ...emptyRuleForm('edge-1'), listenPort: '443', sniPattern: '*.com' };
    form.targets = [{ ...emptyTarget(), host: 'a', port: '1' }];
    const bad = buildPushRequest(form, t);
    expect(bad.request).toBeUndefined();
    expect(bad.errors['sniPattern']).toMatch(/^SNI pattern is not a DNS name or \*\.name: /);
    const good = buildPushRequest({ ...form, sniPattern: ' *.Apps.Example.com ' }, t);
    expect(good.request?.sni_pattern).toBe('*.apps.example.com');
  });
});
