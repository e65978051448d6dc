import { Module } from '@nestjs/common';
import { TestDataController } from './test-data.controller';
import { TestDataService } from './test-data.service';

/** `DELETE /v1/test-data`: the tenant's test contacts and accounts. */
@Module({ controllers: [TestDataController], providers: [TestDataService] })
export class TestDataModule {}
