import { Module } from '@nestjs/common';
import { GatewayInvalidation } from './gateway-invalidation';

/** Which gateways are alive, and the acknowledged invalidation of their key caches. */
@Module({ providers: [GatewayInvalidation], exports: [GatewayInvalidation] })
export class GatewaysModule {}
