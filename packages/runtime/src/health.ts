import { Controller, Get, Inject, Module, ServiceUnavailableException, type DynamicModule, type INestApplicationContext, type Provider } from '@nestjs/common';
import { watchDependencies } from './metrics';
import { ModulesContainer } from '@nestjs/core';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TerminusModule, type HealthCheckResult, type HealthIndicatorResult } from '@nestjs/terminus';

const READINESS_CHECKS = Symbol('READINESS_CHECKS');
const REPORTED_CHECKS = Symbol('REPORTED_CHECKS');
/** Named probes: each resolves when its dependency answers, rejects (or times out) when not. */
export type ReadinessChecks = Record<string, () => Promise<unknown>>;

/**
 * The app's readiness checks, if it has a HealthModule (the database gate reuses `database`).
 * Looked up in the module graph: `app.get` of a missing provider does not throw but ends the
 * process (Nest's abortOnError), and an app without health is allowed.
 */
export function readinessChecksOf(app: INestApplicationContext): ReadinessChecks | undefined {
  for (const module of app.get(ModulesContainer, { strict: false }).values()) {
    const wrapper = module.providers.get(READINESS_CHECKS);
    if (wrapper) return wrapper.instance as ReadinessChecks;
  }
  return undefined;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessChecks,
    @Inject(REPORTED_CHECKS) private readonly reported: ReadinessChecks,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    const reported = Promise.all(Object.entries(this.reported).map(([name, probe]) => this.probe(name, probe)));
    try {
      const result = await this.health.check(Object.entries(this.checks).map(([name, probe]) => () => this.probe(name, probe)));
      return withReported(result, await reported);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      throw new ServiceUnavailableException(withReported(err.getResponse() as HealthCheckResult, await reported));
    }
  }

  private async probe(name: string, probe: () => Promise<unknown>): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(name);
    try {
      await withTimeout(probe(), 2_000);
      return session.up();
    } catch (err) {
      return session.down({ message: (err as Error).message });
    }
  }
}

/**
 * A reported check is in `details` (and in `info` when up) but never in `error` and never decides
 * `status`: the gateway stays ready while identity is down (DESIGN, Health) and says so.
 */
function withReported(result: HealthCheckResult, reported: HealthIndicatorResult[]): HealthCheckResult {
  if (reported.length === 0) return result;
  const all: HealthIndicatorResult = Object.assign({}, ...reported);
  const up = Object.fromEntries(Object.entries(all).filter(([, v]) => v.status === 'up'));
  return { ...result, info: { ...result.info, ...up }, details: { ...result.details, ...all } };
}

@Module({})
export class HealthModule {
  /**
   * `checks` is a provider of READINESS_CHECKS built from the service's own dependencies;
   * `reported` (same dependencies) are probed and shown in the body but do not make it unready.
   */
  static forChecks(checks: {
    inject?: Array<string | symbol | Function>;
    useFactory: (...deps: never[]) => ReadinessChecks;
    reported?: (...deps: never[]) => ReadinessChecks;
  }): DynamicModule {
    const inject = checks.inject ?? [];
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [
        // The same probes feed keyway_dependency_up{dependency} at scrape time (metrics.ts).
        { provide: READINESS_CHECKS, inject, useFactory: (...deps: never[]) => watchDependencies(checks.useFactory(...deps)) } as Provider,
        { provide: REPORTED_CHECKS, inject, useFactory: checks.reported ?? (() => ({})) } as Provider,
      ],
    };
  }
}
