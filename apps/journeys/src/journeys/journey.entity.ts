import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('journeys')
export class JourneyEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') tenant_id!: string;
  /** DESIGN "Test mode": a journey of one mode does not exist for a key of the other. */
  @Column('text') environment!: 'live' | 'test';
  /** Checked with contacts (Rpc.contactsExists) when written; contacts' tables are not ours to read. */
  @Column('text', { nullable: true }) contact_id!: string | null;
  @Column('text', { nullable: true }) anonymous_id!: string | null;
  /** When `keyway.contacts.deleted` unlinked its contact (contact_id is null since); internal. */
  @Column('timestamptz', { nullable: true }) contact_deleted_at!: Date | null;
  @Column('timestamptz') created_at!: Date;
  /** Kept by triggers on insert (see the touchpoint-counts migration), never written here. */
  @Column({ type: 'integer', insert: false, update: false }) touchpoint_count!: number;
  @Column({ type: 'integer', insert: false, update: false }) conversion_count!: number;
}

@Entity('touchpoints')
export class TouchpointEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') journey_id!: string;
  /** Database-assigned insertion order; breaks ties between equal occurred_at. */
  @Column({ type: 'bigint', insert: false, update: false, select: false }) seq!: string;
  @Column('text') type!: string;
  @Column('timestamptz') occurred_at!: Date;
  @Column('text', { nullable: true }) url!: string | null;
  @Column('text', { nullable: true }) source!: string | null;
  @Column('text', { nullable: true }) medium!: string | null;
  @Column('text', { nullable: true }) campaign!: string | null;
  @Column('jsonb', { nullable: true }) properties!: Record<string, unknown> | null;
}

@Entity('conversions')
export class ConversionEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') journey_id!: string;
  @Column({ type: 'bigint', insert: false, update: false, select: false }) seq!: string;
  @Column('text') name!: string;
  @Column('timestamptz') occurred_at!: Date;
  @Column('double precision', { nullable: true }) value!: number | null;
}
