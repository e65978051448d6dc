import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('accounts')
export class AccountEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') tenant_id!: string;
  @Column('text') name!: string;
  @Column('text', { nullable: true }) domain!: string | null;
  @Column('jsonb') properties!: Record<string, unknown>;
  @Column('timestamptz') created_at!: Date;
  @Column('timestamptz') updated_at!: Date;
}
