import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { AccountEntity } from './accounts/account.entity';
import { AccountsModule } from './accounts/accounts.module';
import { CONTACTS_CONFIG, SERVICE, type ContactsConfig } from './config';
import { ContactEntity } from './contacts/contact.entity';
import { ContactsModule } from './contacts/contacts.module';
import { EventsModule } from './events/events.module';
import { migrations } from './migrations';
import { TestDataModule } from './test-data/test-data.module';

/** The contacts service: one module per feature; the config is global to them. */
@Module({})
export class AppModule {
  static forRoot(config: ContactsConfig): DynamicModule {
    const providers = [{ provide: CONTACTS_CONFIG, useValue: config }];
    return {
      module: AppModule,
      global: true,
      imports: [
        ...serviceModules({ service: SERVICE, config, entities: [ContactEntity, AccountEntity], migrations }),
        AccountsModule,
        ContactsModule,
        TestDataModule,
        EventsModule,
      ],
      providers,
      exports: providers.map((p) => p.provide),
    };
  }
}
