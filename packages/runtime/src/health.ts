import { Controller, Get, Inject, Module, type DynamicModule, type Provider } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TerminusModule } from '@nestjs/terminus';

const READINESS_CHECKS = Symbol('READINESS_CHECKS');
/** Named probes: each resolves when its dependency answers, rejects (or times out) when not. */
export type ReadinessChecks = Record<string, () => Promise<unknown>>;

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessChecks,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check(
      Object.entries(this.checks).map(([name, probe]) => async () => {
        const session = this.indicators.check(name);
        try {
          await withTimeout(probe(), 2_000);
          return session.up();
        } catch (err) {
          return session.down({ message: (err as Error).message });
        }
      }),
    );
  }
}

@Module({})
export class HealthModule {
  /** `checks` is a provider of READINESS_CHECKS built from the service's own dependencies. */
  static forChecks(checks: {
    inject?: Array<string | symbol | Function>;
    useFactory: (...deps: never[]) => ReadinessChecks;
  }): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [{ provide: READINESS_CHECKS, inject: checks.inject ?? [], useFactory: checks.useFactory } as Provider],
    };
  }
}
