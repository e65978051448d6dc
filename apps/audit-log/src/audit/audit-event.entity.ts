import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('audit_events')
export class AuditEventEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') tenant_id!: string;
  @Column('text') key_id!: string;
  @Column('text') type!: string;
  @Column('integer') schema_version!: number;
  @Column('timestamptz') occurred_at!: Date;
  @Column('text') prefix!: string;
  @Column('text') actor_type!: string;
  @Column('text') actor_id!: string;
  @Column('jsonb') data!: Record<string, unknown>;
  /** bigint: pg hands it back as a string. */
  @Column('bigint') stream_seq!: string;
  @Column('timestamptz') recorded_at!: Date;
}
