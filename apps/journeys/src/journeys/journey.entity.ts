import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('journeys')
export class JourneyEntity {
  @PrimaryColumn('text') id!: string;
  @Column('text') tenant_id!: string;
  /** Stored as given: this service cannot see the contacts database (see README). */
  @Column('text', { nullable: true }) contact_id!: string | null;
  @Column('text', { nullable: true }) anonymous_id!: string | null;
  @Column('timestamptz') created_at!: Date;
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
