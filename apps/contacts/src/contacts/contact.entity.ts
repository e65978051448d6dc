import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('contacts')
export class ContactEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') tenant_id!: string;
  /** `live` or `test`: the mode of the key that wrote it; the other mode never sees it. */
  @Column('text') environment!: string;
  @Column('text') type!: string;
  @Column('text') name!: string;
  @Column('text') email!: string;
  @Column('text', { nullable: true }) external_id!: string | null;
  @Column('text', { nullable: true }) account_id!: string | null;
  @Column('jsonb') properties!: Record<string, unknown>;
  @Column('timestamptz') created_at!: Date;
  @Column('timestamptz') updated_at!: Date;
}
