import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { AccountEntity } from './accounts/account.entity';
import { AccountsModule } from './accounts/accounts.module';
import { SERVICE, type ContactsConfig } from './config';
import { ContactEntity } from './contacts/contact.entity';
import { ContactsModule } from './contacts/contacts.module';
import { migrations } from './migrations';

@Module({})
export class AppModule {
  static forRoot(config: ContactsConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ...serviceModules({ service: SERVICE, config, entities: [ContactEntity, AccountEntity], migrations }),
        AccountsModule,
        ContactsModule,
      ],
    };
  }
}
